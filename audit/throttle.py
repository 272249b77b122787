"""The sign-in throttle: django-axes' backend, marking the attempts it refuses."""

from axes.backends import AxesStandaloneBackend
from axes.exceptions import AxesBackendPermissionDenied


class SignInThrottleBackend(AxesStandaloneBackend):
    """Refuses every sign-in while the username or the address is locked out, like axes'
    backend, and marks the request (``sign_in_locked_out``) so the failure Django then reports
    is not recorded: a locked-out client must not be able to make anything grow. Axes' own flag
    cannot tell this apart, as axes also sets it on the failure that starts the lockout."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        try:
            return super().authenticate(request, username=username, password=password, **kwargs)
        except AxesBackendPermissionDenied:
            if request is not None:
                request.sign_in_locked_out = True
            raise
