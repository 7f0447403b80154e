# Image for the web process, the Celery worker and Celery beat; see
# docker-compose.yml for the commands and settings of each.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --system --user-group --no-create-home --home-dir /app pxsync

# pyproject.toml declares no packages ([tool.setuptools] packages = []), so
# this installs only the dependencies and the code runs from /app. Copying the
# two files alone first keeps the dependency layer cached across code changes.
COPY pyproject.toml README.md /tmp/pxsync/
RUN pip install /tmp/pxsync && rm -rf /tmp/pxsync

WORKDIR /app
COPY . .

# STATIC_ROOT is VAR_DIR/staticfiles, /app/var/staticfiles here. Collecting at
# build time runs with the development defaults of config/settings.py, which
# is enough because collectstatic reads no secret and opens no connection.
RUN python manage.py collectstatic --no-input \
    && chown -R pxsync:pxsync /app/var

USER pxsync
EXPOSE 8000

# WhiteNoise serves the collected static files; a proxy in front handles TLS.
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
