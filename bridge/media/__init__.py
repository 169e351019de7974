"""The media worker process: a call's sources (RTP or an ingest feed), playout, encoders,
destinations (RTMP), recorder and listen tap, driven by one ticker per worker. It takes the far
end as an :class:`rtp.peer.Peer` and imports nothing of SIP, ingest or the daemon's side."""
