# Vision encoder against an independent torch reference (vision_golden.py, Debian's
# python3-torch); ~10 s, most of it importing torch.
add_executable(test_vision_golden ${CMAKE_CURRENT_LIST_DIR}/test_vision_golden.cc)
target_link_libraries(test_vision_golden PRIVATE herd_lib GTest::gtest_main)
target_compile_definitions(test_vision_golden PRIVATE HERD_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
add_test(NAME vision_golden COMMAND test_vision_golden)
set_tests_properties(vision_golden PROPERTIES LABELS "vision;model" TIMEOUT 300)
# --image through `herd logits` / `herd run` (vision_cli.sh): splicing, layout errors, a
# text-only extraction. A few seconds, so it runs under ASan with the unit tests.
add_test(NAME vision_cli COMMAND ${CMAKE_CURRENT_LIST_DIR}/vision_cli.sh $<TARGET_FILE:herd>)
set_tests_properties(vision_cli PROPERTIES LABELS "unit;vision" TIMEOUT 300)
# Images through the HTTP server (server/images_test.py, Pillow + urllib): two image_url data
# URLs stream a reply, usage.prompt_tokens counts both images, a truncated PNG is a 400.
add_test(NAME server_images
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/server/images_test.py
                 $<TARGET_FILE:herd> ${CMAKE_CURRENT_BINARY_DIR}/server-images)
set_tests_properties(server_images PROPERTIES LABELS "server;vision;integration" TIMEOUT 300)
