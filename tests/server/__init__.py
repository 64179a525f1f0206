"""Server tests: a package, so that their helpers import as `server.support`."""
