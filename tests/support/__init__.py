"""The test harness shared by tests/unit, tests/integration, tests/e2e, bench/ and hack/demo.py.

- devcluster: the local cluster of hack/devcluster (ClusterEnv, up/down, REPO_ROOT)
- kube: kubectl against it, and the CJBatch CRD installed on it
- processes: one child process with its own log (ManagedProcess), free_port
- stack: the system as local processes (StackConfig, Stack): provider API, workers, operator
- cjbatches: CJBatch objects on the API server as a user sees them (Batches, phase, condition)
- kafka: read what a topic holds (collect_records/events/keyed), create and delete topics
- metrics: scrape a process's Prometheus /metrics page (scrape, metric, bucket_quantile)
- polling: wait for a condition another process makes true
- isolation: unique names and Redis clean-up that keep runs apart on the shared cluster
- factories, spec_cases: valid contract objects and CJBatch spec cases
- chart, dockerfiles: the Helm chart rendered by helm, and the Dockerfiles' instructions
- ellipse: the ELLIPSE essays, read in place

Scripts outside tests/ import it by running as modules from the repository root
(`python -m hack.demo`, `python -m bench.<script>`).
"""
