from services.mutual_aid.main import Settings, build
from shared.serve import serve

serve(build, Settings())
