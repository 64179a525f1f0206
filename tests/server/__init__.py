"""Server tests (a package, so that its conftest is `server.conftest`, not a second
top-level `conftest` module shadowing tests/runtime's for the test files that import it)."""
