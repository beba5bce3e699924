"""Vertex AI: Imagen's `:predict`, Gemini image models' `:generateContent`, and the publisher model resource
that google-cloud-aiplatform's `from_pretrained` reads, under /vertex/{v1,v1beta1}/ (google-genai's
`vertexai=True` client sends v1beta1), regional (`projects/{p}/locations/{l}/...`) and in express mode
(`publishers/google/models/...` with an API key)."""

from __future__ import annotations

from aiohttp import web

from ..behaviours import Kind, Outcome
from ..provider import Provider
from .common import Labels
from .generate_content import serve_generate_content
from .google import GoogleError, GoogleWire
from .imagen import serve_predict

SCHEMA = "gs://google-cloud-aiplatform/schema/predict/{kind}/vision_generative_model_1.0.0.yaml"
AUTH_DOC = ("Expected OAuth 2 access token, login cookie or other valid authentication credential. See "
            "https://developers.google.com/identity/sign-in/web/devconsole-project.")
METHODS = ("predict", "generateContent", "streamGenerateContent")


class VertexAI(GoogleWire):
    api = "vertex"
    prefix = "/vertex"

    def routes(self) -> list[web.RouteDef]:
        models = "publishers/google/models/{model:[^/:]+}"
        regional = "/vertex/{version:v1|v1beta1}/projects/{project}/locations/{location}/" + models
        express = "/vertex/{version:v1|v1beta1}/" + models
        return [web.post(regional + ":{method}", self.route(self.call)),
                web.post(express + ":{method}", self.route(self.call)),
                web.get(regional, self.route(self.publisher_model)),
                web.get(express, self.route(self.publisher_model))]

    def refuse_missing(self) -> GoogleError:
        return GoogleError(401, f"Request is missing required authentication credential. {AUTH_DOC}")

    def refuse_invalid(self, request: web.Request) -> GoogleError:
        return GoogleError(401, f"Request had invalid authentication credentials. {AUTH_DOC}")

    @staticmethod
    def resource(request: web.Request) -> str:
        info = request.match_info
        path = f"publishers/google/models/{info['model']}"
        if "project" in info:
            path = f"projects/{info['project']}/locations/{info['location']}/{path}"
        return path

    def not_found(self, request: web.Request) -> GoogleError:
        return GoogleError(404, f"Publisher Model `{self.resource(request)}` not found.")

    async def call(self, request: web.Request, labels: Labels) -> web.StreamResponse:
        method = request.match_info["method"]
        model = request.match_info["model"]
        provider = self.models.get(model)
        caller = self.caller(request, provider)
        if method not in METHODS:
            raise GoogleError(404, f"Method `{method}` is not found for `{self.resource(request)}`; "
                                   f"supported: {', '.join(METHODS)}.")
        if provider is None or provider.profile.api not in ("vertex", "gemini"):
            raise self.not_found(request)
        # Quota is per project and base model (an API key's own in express mode).
        project = request.match_info.get("project", f"express:{caller}")
        quota_key = f"{project}/{provider.name}"
        if method == "predict":
            if provider.profile.api == "gemini":
                raise GoogleError(400, "Gemini cannot be accessed through Vertex Predict/RawPredict API. Please "
                                       "follow https://cloud.google.com/vertex-ai/docs/generative-ai/start/"
                                       "quickstarts/quickstart-multimodal for Gemini usage.",
                                  status_name="FAILED_PRECONDITION")
            return await serve_predict(self, request, labels, provider, model, quota_key, gemini_api=False)
        if provider.profile.api != "gemini":
            raise GoogleError(400, f"{model} is an Imagen model: it generates images with :predict, not :{method}.")
        return await serve_generate_content(self, request, labels, provider, model, quota_key, vertex=True,
                                            stream=method == "streamGenerateContent")

    async def publisher_model(self, request: web.Request, labels: Labels) -> web.StreamResponse:
        model = request.match_info["model"]
        provider = self.models.get(model)
        self.caller(request, provider)
        if provider is None or provider.profile.api not in ("vertex", "gemini"):
            raise self.not_found(request)
        labels.provider, labels.model = provider.name, model
        return web.json_response(publisher_model(model, provider))

    def failure(self, outcome: Outcome, model: str, method: str, headers: dict[str, str]) -> web.Response:
        kind = outcome.kind
        if kind is Kind.RATE_LIMITED:
            # Vertex sends no Retry-After: clients back off on their own.
            if method == "predict":
                return self.error(429, "Quota exceeded for aiplatform.googleapis.com/"
                                       f"online_prediction_requests_per_base_model with base model: {model}. "
                                       "Please submit a quota increase request. "
                                       "https://cloud.google.com/vertex-ai/docs/generative-ai/quotas-genai.",
                                  headers=headers)
            # Gemini on Vertex runs on dynamic shared quota, which words its 429 this way.
            return self.error(429, "Resource exhausted. Please try again later. Please refer to "
                                   "https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more "
                                   "details.", headers=headers)
        if kind in (Kind.OVERLOADED, Kind.OUTAGE):
            return self.error(503, "The service is currently unavailable.", headers=headers)
        if kind is Kind.TIMEOUT:
            return self.error(504, "Deadline exceeded.", headers=headers)
        return self.error(500, "Internal error encountered.", headers=headers)


def publisher_model(model: str, provider: Provider) -> dict[str, object]:
    """The PublisherModel resource, with what `from_pretrained` reads: its name, the template of the
    endpoint it predicts on, and (for Imagen) the instance schema that names the SDK class it fits."""
    version = model.rsplit("-", 1)[-1] if model.rsplit("-", 1)[-1].isdigit() else "default"
    resource: dict[str, object] = {
        "name": f"publishers/google/models/{model}",
        "versionId": version,
        "openSourceCategory": "PROPRIETARY",
        "launchStage": "GA",
        "versionState": "VERSION_STATE_STABLE",
        "publisherModelTemplate": f"projects/{{user-project}}/locations/{{location}}/publishers/google/models/{model}",
    }
    if provider.profile.api == "vertex":
        resource["predictSchemata"] = {"instanceSchemaUri": SCHEMA.format(kind="instance"),
                                       "parametersSchemaUri": SCHEMA.format(kind="params"),
                                       "predictionSchemaUri": SCHEMA.format(kind="prediction")}
    return resource
