"""A local file storage that fails on command: the storage boundary of the fault suite."""

import errno

from django.core.files.storage import FileSystemStorage


class FailingStorage(FileSystemStorage):
    """FileSystemStorage whose deletes or opens raise OSError when armed.

    ``fail_deletes``: the 1-based numbers of the delete calls to fail (counted from reset),
    or ``ALL``. ``fail_opens``: the errno open() raises, or None."""

    ALL = "all"
    fail_deletes: set | str = set()
    fail_opens: int | None = None
    deletes = 0

    @classmethod
    def reset(cls) -> None:
        cls.fail_deletes, cls.fail_opens, cls.deletes = set(), None, 0

    def delete(self, name):
        type(self).deletes += 1
        if self.fail_deletes == self.ALL or type(self).deletes in self.fail_deletes:
            raise OSError(errno.EIO, "injected: storage refused the delete", name)
        return super().delete(name)

    def open(self, name, mode="rb"):
        if self.fail_opens is not None:
            raise OSError(self.fail_opens, "injected: storage down", name)
        return super().open(name, mode)
