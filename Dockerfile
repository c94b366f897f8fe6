# The backend image of docker-compose-test.yaml: its web, celery and seed services all run it.
# Every setting comes from the environment (.env.test there), so the image holds no configuration.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app

# Requirements first: code changes then reuse the cached dependency layer. Every pinned package
# ships a manylinux wheel (psycopg[binary] included), so the slim image needs no compiler.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .

# Not root; run_perf writes its CSV and HTML reports into the working directory.
RUN useradd --create-home --uid 1000 perfkit && chown -R perfkit /app
USER perfkit

EXPOSE 8000
# docker-compose-test.yaml overrides this to migrate first; here it is the plain server
# (gunicorn.conf.py: 4 workers x 2 threads, gthread, 75 s keep-alive).
CMD ["gunicorn", "-c", "gunicorn.conf.py", "--bind", "0.0.0.0:8000"]
