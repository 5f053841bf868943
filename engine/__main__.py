from mlci.engine.cli.main import entry

entry()
