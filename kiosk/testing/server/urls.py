"""Root URLs of the reference server: simplejwt's stock views, the ward API, the test endpoints.

The token endpoints depend on ``KIOSK_SERVER_DIALECT`` (see settings): simplejwt's pair views
(default), its sliding views, djoser's ``/auth/jwt/...`` or dj-rest-auth's ``/dj-rest-auth/...``.

``/api/token/blacklist/`` is simplejwt's own ``TokenBlacklistView`` even when the blacklist app is
left out: it then validates the token and answers 200 ``{}`` without doing anything, which is
exactly what a client of such a server sees.
"""

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from rest_framework_simplejwt.views import (
    TokenBlacklistView,
    TokenObtainPairView,
    TokenObtainSlidingView,
    TokenRefreshSlidingView,
    TokenRefreshView,
    TokenVerifyView,
)

if settings.WIRE_DIALECT == "pair":
    urlpatterns = [
        path("api/token/", TokenObtainPairView.as_view(), name="token_obtain_pair"),
        path("api/token/refresh/", TokenRefreshView.as_view(), name="token_refresh"),
        path("api/token/verify/", TokenVerifyView.as_view(), name="token_verify"),
        path("api/token/blacklist/", TokenBlacklistView.as_view(), name="token_blacklist"),
    ]
elif settings.WIRE_DIALECT == "sliding":
    # simplejwt's docs mount the sliding views at the pair views' paths.
    urlpatterns = [
        path("api/token/", TokenObtainSlidingView.as_view(), name="token_obtain"),
        path("api/token/refresh/", TokenRefreshSlidingView.as_view(), name="token_refresh"),
        path("api/token/verify/", TokenVerifyView.as_view(), name="token_verify"),
    ]
elif settings.WIRE_DIALECT == "djoser":
    urlpatterns = [path("auth/", include("djoser.urls.jwt"))]
else:  # cookie: dj-rest-auth with JWT cookies
    urlpatterns = [path("dj-rest-auth/", include("dj_rest_auth.urls"))]
urlpatterns += [path("api/", include("kiosk.testing.server.ward.urls"))]

if settings.TEST_ENDPOINTS:
    from kiosk.testing.server.ward import stats

    urlpatterns += [
        path("_test/stats/", stats.stats_view, name="test-stats"),
        path("_test/stats/reset/", stats.reset_view, name="test-stats-reset"),
        path("_test/set-password/", stats.set_password_view, name="test-set-password"),
    ]


def _json_error(status: int, detail: str) -> JsonResponse:
    return JsonResponse({"detail": detail}, status=status)


# JSON, not Django's HTML pages: clients under test parse every body they get.
def handler404(request: HttpRequest, exception: Exception) -> JsonResponse:
    """Answer an unknown URL with a JSON 404."""
    return _json_error(404, "Not found.")


def handler500(request: HttpRequest) -> JsonResponse:
    """Answer an unhandled error with a JSON 500."""
    return _json_error(500, "Server error.")
