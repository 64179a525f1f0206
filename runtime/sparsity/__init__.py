"""Double Sparsity (Yang et al.): offline outlier channels per layer and KV head
(`calibration`, made by `sglc calibrate`), a label cache of K restricted to them beside the KV
pool, and decode attention over the tokens those labels score best (`decode`).

Requests ask for it with `SamplingParams.attention_sparsity=(token_ratio, channel_ratio)`;
the engine serves them when started with `sparsity_calibration` ("auto": the file
`sglc calibrate` writes next to the model).
"""
