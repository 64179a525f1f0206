"""The IR of SGL programs: data types, printer, verifier, passes."""
