"""Scaling out over torch.distributed and processes: tensor parallelism (a model sharded
over `tp_size` processes) and data parallelism (`dp_size` engine replicas behind a
cache-aware router).

Modules:
    comm          Communicator: all-reduce, all-gather, broadcast over a process group
    sharding      TPShard: Megatron-style split of the Llama family; the parallel layers
    batch_wire    the compact forward pass rank 0 broadcasts
    tp_worker     ranks 1..N-1: load a shard, run the broadcast forward passes
    tp_leader     rank 0: start the workers, TPModelRunner, shutdown
"""
