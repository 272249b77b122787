"""Reading an electronic signature from a dashboard form (templates/approvals/_sign_fields.html)."""

from django.http import HttpRequest

from approvals.services import SignatureInput


def signature_from(request: HttpRequest) -> SignatureInput | None:
    """The password and meaning the form sent; ``None`` when it sent neither (the service then
    refuses where the policy requires a signature)."""
    password = request.POST.get("password", "")
    meaning = request.POST.get("meaning", "")
    if not password and not meaning:
        return None
    return SignatureInput(password=password, meaning=meaning, request=request)
