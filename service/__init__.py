"""The devicefit service: a FastAPI app over the search engine, a jobs table and a web page."""
