"""The baseline: a bare Starlette JSON endpoint on the refund path, served like the sandbox.

`python bench/baseline_app.py PORT` runs it under uvicorn with the sandbox's own server settings
(loop and HTTP parser picked the same way, no access log), so the ratio compares the application
code and nothing else.
"""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def refund(request: Request) -> JSONResponse:
    await request.body()
    return JSONResponse({"refundId": "1", "status": "ok"}, status_code=201)


app = Starlette(routes=[
    Route("/health", health),
    Route("/v2/payments/{orderId}/refund", refund, methods=["POST"]),
])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_config=None,
                access_log=False, log_level="warning", lifespan="on")
