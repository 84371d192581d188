"""Runtime data shipped with sinkmap: coefficient tables and the demo county outline."""
