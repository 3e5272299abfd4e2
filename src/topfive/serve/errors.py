"""The API's errors: a status, a short code and a sentence, always sent as JSON."""

from __future__ import annotations


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict:
        return {"error": self.code, "message": self.message}


def too_large(message: str) -> ApiError:
    return ApiError(413, "too_large", message)


def not_an_image(message: str) -> ApiError:
    return ApiError(415, "not_an_image", message)


def bad_field(message: str) -> ApiError:
    return ApiError(422, "bad_field", message)


def busy(message: str) -> ApiError:
    return ApiError(503, "busy", message)
