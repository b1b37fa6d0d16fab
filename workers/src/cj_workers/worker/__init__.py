"""The stateless worker: Redis stream in, judge, Kafka event out (`python -m cj_workers.worker`)."""
