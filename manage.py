#!/usr/bin/env python
import os
import sys

# Commands that only read the code: they need no secret key, so a bare checkout can run them
# (the production settings otherwise refuse to start without SECRET_KEY).
CODE_ONLY_COMMANDS = {"makemigrations"}


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_site.settings")
    if len(sys.argv) > 1 and sys.argv[1] in CODE_ONLY_COMMANDS and not os.environ.get("SECRET_KEY"):
        os.environ.setdefault("REGISTRY_DEV", "1")
    from django.core.exceptions import ImproperlyConfigured

    try:
        from django.core.management import execute_from_command_line

        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as e:
        # A settings mistake is the operator's to fix: one clear line, not a traceback.
        print(f"Configuration error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
