"""Every exception class of genboost, in one place (the base layer, so that any layer may raise any of them).

Each message names what is wrong where: the config key, the file (and row, column), or the URL, and the value.
Nothing is imported here, so that a job that only downloads (say) loads none of the libraries of the others.
"""


class ConfigError(ValueError):
    """An invalid config value, or config values that do not fit together; the message names the key and the value."""


class DataError(Exception):
    """Bad or unavailable input data; the message names the file or URL, the field and the value."""


class CodeError(RuntimeError):
    """A script imports a module that is not there, or a job runs other code than its Snakefile planned."""


class PublishedTableError(ValueError):
    """A published table (config key `reference`) that breaks the format of reference/README.md."""
