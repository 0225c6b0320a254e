from django.db import models


class Heartbeat(models.Model):
    """When a kind of background process last showed it was alive ("scheduler", "worker")."""

    name = models.CharField(max_length=32, unique=True)
    at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.at.isoformat()}"
