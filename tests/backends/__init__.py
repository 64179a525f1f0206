"""Remote-backend tests: a package, so that their helpers import as `backends.support`."""
