"""OpenAI-style error responses: every bad request gets a 4xx whose body names the problem."""

from __future__ import annotations

from fastapi.responses import JSONResponse

TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    413: "invalid_request_error",
    503: "service_unavailable",
    500: "internal_error",
}


class APIError(Exception):
    def __init__(
        self, status: int, message: str, param: str | None = None, code: str | None = None
    ):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code


def error_body(
    status: int, message: str, param: str | None = None, code: str | None = None
) -> dict:
    return {
        "error": {
            "message": message,
            "type": TYPES.get(status, "invalid_request_error"),
            "param": param,
            "code": code if code is not None else status,
        },
        "object": "error",
    }


def error_response(status: int, message: str, param: str | None = None, code=None) -> JSONResponse:
    return JSONResponse(error_body(status, message, param, code), status_code=status)
