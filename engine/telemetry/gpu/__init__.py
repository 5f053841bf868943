"""GPU telemetry through NVML (nvidia-ml-py), or recorded samples, behind one sampler interface."""
