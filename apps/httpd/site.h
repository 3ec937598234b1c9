#pragma once

#include "http.h"

namespace keel::httpd {

/// The pages built into the image ("/" serves /index.html).
http::Site site();

}  // namespace keel::httpd
