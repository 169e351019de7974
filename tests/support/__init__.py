"""Real test peers (nginx-rtmp, kamailio, baresip, the daemon) and audio analysis."""
