"""mlci's Textual dashboard: renders engine events and sends engine commands; holds no engine logic."""
