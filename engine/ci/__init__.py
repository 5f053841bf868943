"""Remote CI: the workflow mlci writes for a provider, and following the runs a push started."""
