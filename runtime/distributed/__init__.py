"""Scaling out over torch.distributed and processes: tensor parallelism (a model sharded
over `tp_size` processes) and data parallelism (`dp_size` engine replicas behind a
cache-aware router).

Modules:
    comm          Communicator: all-reduce, all-gather, broadcast over a process group
    sharding      TPShard: Megatron-style split of the Llama family; the parallel layers
    batch_wire    the compact forward pass rank 0 broadcasts
    tp_worker     ranks 1..N-1: load a shard, run the broadcast forward passes
    tp_leader     rank 0: start the workers, TPModelRunner, shutdown
    router        which replica serves a request: cache-aware (approximate radix trees) or
                  round robin
    dp_core       DataParallelCore: the front end of Engine(dp_size=N), in the EngineCore's place
    dp_replica    a replica process: one whole engine serving the front end over a pipe
    lifecycle     child processes leave when the engine's process is gone
"""
