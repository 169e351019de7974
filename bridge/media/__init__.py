"""Media pipeline: RTP sockets, wall-clock playout, AAC encoding, FLV audio bodies."""
