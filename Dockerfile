# Hub's own image: one package, several processes (api, and later worker and feed).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml setup.py README.md ./
COPY hub ./hub
COPY streaming ./streaming
COPY sql ./sql
RUN pip install --no-cache-dir . && useradd --create-home hub
USER hub
EXPOSE 8000 50051
CMD ["hub", "serve", "--host", "0.0.0.0"]
