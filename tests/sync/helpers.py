import httpx


def control(handle, method: str, path: str, body=None) -> dict:
    """Drives the emulator's control API, the way an MDM administrator would change things."""
    response = httpx.request(method, f"{handle.url}/_emulator{path}", json=body, timeout=10)
    response.raise_for_status()
    return response.json()
