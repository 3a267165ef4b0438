"""Scenarios with known truth, rendered from real photos and video to video.avi + audio.wav + truth.json."""
