"""Reading what the user wrote: mlci.yaml or [tool.mlci], the gate file, trigger patterns, the tracking store."""
