"""The SGL standard library: .sgl modules shipped as package data (judge, arena, safety,
agents, extract, verify, regexes, tools) and the Python helpers beside them (ratings,
judge_stats, safety_stats, dom, extraction, battles, toolbox, checkers, loader).

NOTE: keep this file free of imports: `import` in SGL locates the folder through
`importlib.resources`, which imports this package, and `sglc check` must stay torch-free.
"""
