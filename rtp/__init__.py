"""RTP/RTCP packets, G.711, jitter buffer and the RTP receive path."""
