"""Modal screens pushed over the dashboard: confirmations and details."""
