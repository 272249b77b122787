from registry_site import __version__


def site(request):
    return {"registry_version": __version__}
