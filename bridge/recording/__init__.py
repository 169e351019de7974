"""Call recordings: file formats (sans-IO), configuration, the daemon's store, repair, retention, uploads."""
