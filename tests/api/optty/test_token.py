"""POST /token: client credentials in, an HS256 JWT out, NestJS errors for the rest."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import jwt
from starlette.testclient import TestClient

from mock_server.app import create_app
from mock_server.optty.tokens import DEFAULT_JWT_SECRET
from mock_server.settings import Settings

UNAUTHORIZED = {"statusCode": 401, "message": "Unauthorized"}


def claims_of(token: str, secret: str = DEFAULT_JWT_SECRET) -> dict[str, Any]:
    return dict(jwt.decode(token, secret, algorithms=["HS256"], options={"verify_exp": False}))


def test_form_encoded_credentials_get_the_documented_answer(optty: Any, time_source: Any
                                                            ) -> None:
    answer = optty.request_token()
    assert answer.status_code == 201
    assert answer.headers["content-type"] == "application/json; charset=utf-8"
    body = answer.json()
    assert list(body) == ["access_token", "expires_in", "token_type", "scope"]
    assert body["expires_in"] == 86400
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "api-user"
    assert jwt.get_unverified_header(body["access_token"])["alg"] == "HS256"
    iat = math.floor(time_source.now.timestamp())
    assert claims_of(body["access_token"]) == {
        "merchantId": "sandbox-merchant", "scope": "api-user", "iat": iat, "exp": iat + 86400}


def test_token_lifetime_counts_from_the_session_clock(optty: Any, time_source: Any) -> None:
    optty.advance(3 * 86400)
    claims = claims_of(optty.request_token().json()["access_token"])
    assert claims["iat"] == math.floor(time_source.now.timestamp()) + 3 * 86400
    assert claims["exp"] == claims["iat"] + 86400


def test_a_json_body_is_read_too(client: TestClient) -> None:
    answer = client.post("/token", json={
        "client_id": "other-client", "client_secret": "other-secret",
        "grant_type": "client_credentials", "scope": "api-user"})
    assert answer.status_code == 201
    assert claims_of(answer.json()["access_token"])["merchantId"] == "other-merchant"


def test_the_plugins_extra_response_type_is_tolerated(optty: Any) -> None:
    assert optty.request_token(response_type="token").status_code == 201


SECRET = "a-secret-key-given-on-the-command-line"


def test_jwt_secret_setting_signs_the_tokens(time_source: Any) -> None:
    app = create_app(Settings(seed=7, jwt_secret=SECRET),
                     time_source=time_source)
    with TestClient(app) as client:
        answer = client.post("/token", data={
            "client_id": "sandbox-client", "client_secret": "sandbox-secret",
            "grant_type": "client_credentials", "scope": "api-user"})
        token = answer.json()["access_token"]
        assert claims_of(token, SECRET)["merchantId"] == "sandbox-merchant"
        # a token signed with the documented default is not this sandbox's
        default = jwt.encode(claims_of(token, SECRET), DEFAULT_JWT_SECRET, algorithm="HS256")
        refused = client.get("/orders/ORD-1001", headers={"Authorization": f"Bearer {default}"})
        assert refused.status_code == 401


def test_wrong_secret_is_401(optty: Any) -> None:
    answer = optty.request_token(client_secret="not-the-secret")
    assert answer.status_code == 401
    assert answer.json() == UNAUTHORIZED


def test_unknown_client_is_401(optty: Any) -> None:
    answer = optty.request_token(client_id="nobody")
    assert answer.status_code == 401
    assert answer.content == b'{"statusCode":401,"message":"Unauthorized"}'


def test_another_merchants_secret_is_401(optty: Any) -> None:
    assert optty.request_token(client_secret="other-secret").status_code == 401


def test_wrong_grant_type_is_400(optty: Any, nest: Callable[..., Any]) -> None:
    answer = optty.request_token(grant_type="password")
    assert answer.status_code == 400
    assert answer.json() == nest(
        400, ["grant_type must be one of the following values: client_credentials"],
        "Bad Request")


def test_wrong_scope_is_400(optty: Any, nest: Callable[..., Any]) -> None:
    answer = optty.request_token(scope="admin")
    assert answer.status_code == 400
    assert answer.json() == nest(
        400, ["scope must be one of the following values: api-user"], "Bad Request")


def test_validation_comes_before_the_credentials(optty: Any) -> None:
    # the ValidationPipe runs before the controller checks the secret
    answer = optty.request_token(client_secret="wrong", scope="admin")
    assert answer.status_code == 400


def test_no_body_lists_every_failed_constraint(client: TestClient, nest: Callable[..., Any]
                                               ) -> None:
    answer = client.post("/token")
    assert answer.status_code == 400
    assert answer.json() == nest(400, [
        "client_id should not be empty",
        "client_id must be a string",
        "client_secret should not be empty",
        "client_secret must be a string",
        "grant_type must be one of the following values: client_credentials",
        "scope must be one of the following values: api-user",
    ], "Bad Request")


def test_a_repeated_form_field_is_an_array_not_a_string(client: TestClient) -> None:
    # body-parser's extended (qs) parser: client_id=a&client_id=b is ["a", "b"]
    form = ("client_id=sandbox-client&client_id=sandbox-client&client_secret=sandbox-secret"
            "&grant_type=client_credentials&scope=api-user")
    answer = client.post("/token", content=form.encode(),
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 400
    assert answer.json()["message"] == ["client_id must be a string"]


def test_a_json_number_is_not_a_string(client: TestClient) -> None:
    answer = client.post("/token", content=json.dumps({
        "client_id": 5, "client_secret": "sandbox-secret", "grant_type": "client_credentials",
        "scope": "api-user"}).encode(), headers={"Content-Type": "application/json"})
    assert answer.status_code == 400
    assert answer.json()["message"] == ["client_id must be a string"]


def test_malformed_json_token_request_is_nodes_syntax_error(client: TestClient) -> None:
    answer = client.post("/token", content=b'{"client_id": sandbox}',
                         headers={"Content-Type": "application/json"})
    assert answer.status_code == 400
    assert answer.json()["message"] == "Unexpected token s in JSON at position 14"
