// The /docs page: Swagger UI (Swagger UI 5 from the swagger-ui-py package, served by the app) on /openapi.json.
"use strict";
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
