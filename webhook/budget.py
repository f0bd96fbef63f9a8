"""What reviews in progress may hold, shared by the admission routes."""

from __future__ import annotations

from webhook.settings import WebhookSettings


class ReviewBudget:
    """`WebhookSettings.max_concurrent_reviews` and `max_buffered_bytes`: a review over either
    is shed before its body is read."""

    def __init__(self, settings: WebhookSettings) -> None:
        self.settings = settings
        self.reviews = 0
        self.big_bytes = 0

    def admit(self, size: int) -> str | None:
        """None: admitted (`release(size)` when done). Otherwise why not."""
        settings = self.settings
        if self.reviews >= settings.max_concurrent_reviews:
            return f"{self.reviews} reviews in progress, the limit"
        big = size >= settings.offload_threshold_bytes
        if big and self.big_bytes + size > settings.max_buffered_bytes:
            return f"{self.big_bytes} bytes of large reviews in progress, the limit"
        self.reviews += 1
        if big:
            self.big_bytes += size
        return None

    def release(self, size: int) -> None:
        self.reviews -= 1
        if size >= self.settings.offload_threshold_bytes:
            self.big_bytes -= size
