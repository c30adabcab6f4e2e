// The /docs page: Swagger UI (from the swagger-ui-bundle package, served by the app) on /openapi.json.
"use strict";
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
