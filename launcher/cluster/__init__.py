"""Multi-node renders on Dask: the cluster, its tasks, the split and scheduler failover."""
