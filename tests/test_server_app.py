"""The app's extension points: the web UI's static files and routers mounted by other modules."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.testclient import TestClient

from runlane.server.app import create_app


def test_static_files_and_client_side_routes_never_shadow_api_routes(tmp_path: Path) -> None:
    static = tmp_path / "static"
    (static / "js").mkdir(parents=True)
    (static / "index.html").write_text("<html>runlane</html>")
    (static / "js" / "app.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("outside")
    app = create_app(tmp_path / "store", ui=static)
    late = APIRouter()

    @late.get("/api/2.0/mlflow/experiments/list")
    def experiments() -> dict[str, list[str]]:
        return {"experiments": []}

    app.include_router(late)  # included after the app was made: still answered, not the UI's index.html
    with TestClient(app) as client:
        assert client.get("/").text == "<html>runlane</html>"
        assert client.get("/runs/MMP-3/charts").text == "<html>runlane</html>"  # a client-side route
        script = client.get("/js/app.js")
        assert script.text == "console.log(1)"
        assert "javascript" in script.headers["content-type"]
        assert client.get("/..%2Fsecret.txt").text == "<html>runlane</html>"
        assert client.get("/api/2.0/mlflow/experiments/list").json() == {"experiments": []}
        assert client.get("/api/v1/health").json()["ok"] is True
        missing = client.get("/api/v1/nothing")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"
        assert client.post("/").status_code == 404  # the UI is read with GET only


def test_without_static_files_every_unknown_path_is_a_json_404(tmp_path: Path) -> None:
    with TestClient(create_app(tmp_path / "store", ui=False)) as client:
        response = client.get("/")
        assert response.status_code == 404
        assert response.json()["error"]["message"] == "no route /"
