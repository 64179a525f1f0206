"""The SGL language's tables: static types, builtins, methods, gen parameters. A leaf: the
checker, lowering, the verifier and the executor all read these one definitions."""
