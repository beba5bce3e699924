"""The Gemini Developer API (generativelanguage.googleapis.com) under /gemini: `models/{model}:generateContent`
for the Gemini image models, `models/{model}:predict` for Imagen, `models` and `models/{model}`; an API key in
`x-goog-api-key` or `?key=`. google-genai reaches it with `http_options={"base_url": "<mock>/gemini/"}` (it adds
v1beta, or v1 from google-genai 3)."""

from __future__ import annotations

from aiohttp import web

from ..behaviours import Kind, Outcome
from ..provider import Provider
from .common import Labels
from .generate_content import IMAGE_MODELS, serve_generate_content
from .google import TYPE, GoogleError, GoogleWire, retry_delay
from .imagen import serve_predict

METHODS = {"generateContent": "gemini", "streamGenerateContent": "gemini", "predict": "vertex"}
RATE_LIMITS_DOC = "https://ai.google.dev/gemini-api/docs/rate-limits"
# The paid tier's per-minute request quotas, as the Gemini API names them in a QuotaFailure.
QUOTA = {"gemini": ("generativelanguage.googleapis.com/generate_requests_per_model",
                    "GenerateRequestsPerMinutePerProjectPerModel"),
         "vertex": ("generativelanguage.googleapis.com/predict_requests_per_model",
                    "PredictRequestsPerMinutePerProjectPerModel")}


class GeminiAPI(GoogleWire):
    api = "gemini"
    prefix = "/gemini"
    key_header = "x-goog-api-key"   # or ?key=, which the record does not read

    def routes(self) -> list[web.RouteDef]:
        base = "/gemini/{version:v1|v1beta|v1alpha}/models"
        return [web.post(base + "/{model:[^/:]+}:{method}", self.route(self.call)),
                web.get(base + "/{model:[^/:]+}", self.route(self.get_model)),
                web.get(base, self.route(self.list_models))]

    def refuse_missing(self) -> GoogleError:
        return GoogleError(403, "Method doesn't allow unregistered callers (callers without established identity). "
                                "Please use API Key or other form of API consumer identity to call this API.")

    def refuse_invalid(self, request: web.Request) -> GoogleError:
        if "x-goog-api-key" not in request.headers and "key" not in request.query:
            return GoogleError(401, "Request had invalid authentication credentials. Expected OAuth 2 access "
                                    "token, login cookie or other valid authentication credential.")
        message = "API key not valid. Please pass a valid API key."
        return GoogleError(400, message, details=[
            {"@type": TYPE + "ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com",
             "metadata": {"service": "generativelanguage.googleapis.com"}},
            {"@type": TYPE + "LocalizedMessage", "locale": "en-US", "message": message}])

    def served(self, model: str, method: str) -> Provider | None:
        provider = self.models.get(model)
        if provider is None or provider.profile.api != METHODS.get(method):
            return None
        return provider

    async def call(self, request: web.Request, labels: Labels) -> web.StreamResponse:
        model, method = request.match_info["model"], request.match_info["method"]
        provider = self.served(model, method)
        caller = self.caller(request, provider)
        if provider is None:
            raise GoogleError(404, f"models/{model} is not found for API version {request.match_info['version']}, "
                                   f"or is not supported for {method}. Call ListModels to see the list of "
                                   "available models and their supported methods.")
        quota_key = f"{caller}/{provider.name}"   # per key and model
        if method == "predict":
            return await serve_predict(self, request, labels, provider, model, quota_key, gemini_api=True)
        return await serve_generate_content(self, request, labels, provider, model, quota_key, vertex=False,
                                            stream=method == "streamGenerateContent")

    async def get_model(self, request: web.Request, labels: Labels) -> web.StreamResponse:
        model = request.match_info["model"]
        provider = self.models.get(model)
        self.caller(request, provider)
        if provider is None or provider.profile.api not in ("vertex", "gemini"):
            raise GoogleError(404, f"models/{model} is not found for API version {request.match_info['version']}.")
        labels.provider, labels.model = provider.name, model
        return web.json_response(model_resource(model, provider))

    async def list_models(self, request: web.Request, labels: Labels) -> web.StreamResponse:
        self.caller(request, None)
        models = [model_resource(p.profile.aliases[0] if p.profile.aliases else p.name, p)
                  for p in self.ctx.providers.values() if p.profile.api in ("vertex", "gemini")]
        return web.json_response({"models": models})

    def failure(self, outcome: Outcome, model: str, method: str, headers: dict[str, str]) -> web.Response:
        kind = outcome.kind
        if kind is Kind.RATE_LIMITED:
            provider = self.models[model]
            rpm = provider.settings.requests_per_minute
            wait = outcome.retry_after_s if outcome.retry_after_s is not None else 60.0 / rpm
            metric, quota_id = QUOTA[provider.profile.api]
            return self.error(429, (
                "You exceeded your current quota, please check your plan and billing details. For more "
                f"information on this error, head to: {RATE_LIMITS_DOC}. To monitor your current usage, head to: "
                f"https://ai.dev/rate-limit. \n* Quota exceeded for metric: {metric}, limit: {rpm:g}, model: "
                f"{model}\nPlease retry in {wait:.6f}s."), headers=headers, details=[
                {"@type": TYPE + "QuotaFailure", "violations": [
                    {"quotaMetric": metric, "quotaId": quota_id,
                     "quotaDimensions": {"location": "global", "model": model}, "quotaValue": f"{rpm:g}"}]},
                {"@type": TYPE + "Help", "links": [
                    {"description": "Learn more about Gemini API quotas", "url": RATE_LIMITS_DOC}]},
                {"@type": TYPE + "RetryInfo", "retryDelay": retry_delay(wait)}])
        if kind is Kind.OVERLOADED:
            return self.error(503, "The model is overloaded. Please try again later.", headers=headers)
        if kind is Kind.OUTAGE:
            return self.error(503, "The service is currently unavailable.", headers=headers)
        if kind is Kind.TIMEOUT:
            return self.error(504, "Deadline expired before operation could complete.", headers=headers)
        return self.error(500, "An internal error has occurred. Please retry or report in "
                               "https://developers.generativeai.google/guide/troubleshooting", headers=headers)


def model_resource(model: str, provider: Provider) -> dict[str, object]:
    """The Model resource as ListModels and GetModel answer it."""
    imagen = provider.profile.api == "vertex"
    return {
        "name": f"models/{model}",
        "version": model.rsplit("-", 1)[-1] if model.rsplit("-", 1)[-1].isdigit() else "001",
        "displayName": model.replace("-", " ").title(),
        "description": ("Imagen image generation" if imagen else "Gemini image generation and editing")
                       + " (simulated).",
        "inputTokenLimit": 480 if imagen else 32_768,
        "outputTokenLimit": 8192 if imagen else 32_768,
        "supportedGenerationMethods": ["predict"] if imagen else
                                      ["generateContent", "countTokens", "batchGenerateContent"],
        **({} if imagen or provider.name not in IMAGE_MODELS else {"temperature": 1.0, "topP": 0.95}),
    }
