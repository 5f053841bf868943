"""What is watched beside a run: live training metrics and GPU use."""
