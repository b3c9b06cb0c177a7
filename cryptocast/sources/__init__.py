"""Upstream data: the price APIs, the Fear & Greed API, and CSV exports of either."""
