// Starts Swagger UI on /openapi.json (a file of its own: the page's CSP allows no inline script).
/* global window, SwaggerUIBundle */
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  // no call to the public validator service: the page works offline
  validatorUrl: null,
  // the key entered with "Authorize" lives in this page only (not in localStorage)
  persistAuthorization: false,
  displayRequestDuration: true,
  tryItOutEnabled: false,
});
