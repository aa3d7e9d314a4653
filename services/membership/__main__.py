from services.membership.main import Settings, build
from shared.serve import serve

serve(build, Settings())
