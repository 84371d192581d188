"""sinkmap application layer: CLI, project config and pipeline on top of gis/layers/sinks/maps."""

__version__ = "0.1.0"
